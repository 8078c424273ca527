"""`python -m simulator` runs the same CLI as the `simulator` console script."""

from simulator.cli import main

main()
