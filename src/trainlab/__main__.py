"""``python -m trainlab ...`` (and ``torchrun ... -m trainlab run ...``): the CLI."""

import sys

from trainlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
