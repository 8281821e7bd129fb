"""Land raw data in the warehouse: one module per source, plus what all sources share."""
