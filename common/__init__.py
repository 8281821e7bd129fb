"""Where the project keeps its files, its settings from `.env`, and the email every stage sends."""
