"""One module per schema revision (a package, so that it ships with leadscore)."""
