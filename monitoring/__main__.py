"""`python -m monitoring [--once]`: the vitals processor alone (`hcw processor` is the same), as
`make up`'s supervisord starts it, without the command line above it: with its own roles' passwords
only (warehouse.connection.for_service), never the administrator's, never starting the server."""

import argparse
import logging

from monitoring.processor import serve
from warehouse.connection import for_service

parser = argparse.ArgumentParser(prog="python -m monitoring", description=__doc__.splitlines()[0])
parser.add_argument("--once", action="store_true", help="take what is waiting, then stop")
arguments = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
serve(for_service(), once=arguments.once)
