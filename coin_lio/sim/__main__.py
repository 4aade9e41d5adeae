"""`python -m coin_lio.sim ...` = the coin-lio-sim console script."""
import sys

from coin_lio.sim.cli import main

sys.exit(main())
