"""The version of jaxnet, in a module of its own so that the parts that record it (configs,
exports, the command line) need not import the package's public face."""

__version__ = "0.1.0"
