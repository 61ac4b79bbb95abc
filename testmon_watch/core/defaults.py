"""Names the engine uses when the user gives none; a leaf that every layer may load cheaply."""

# The data set of `--testmon-env` when neither the option nor the ini file names one.
DEFAULT_ENVIRONMENT = "default"
