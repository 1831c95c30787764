"""`python -m leadscore` runs the command line."""

from ._cli import main

# Guarded: `leadscore serve` starts its outbox worker with multiprocessing's
# spawn, which imports the parent's main module (this one) in the child.
if __name__ == "__main__":
    main()
