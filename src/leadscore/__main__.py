"""`python -m leadscore` runs the command line."""

from ._cli import main

main()
