"""Layer 11: the `keel` command line, a thin layer over the library."""
