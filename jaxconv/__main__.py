"""``python -m jaxconv``: the same command line as the ``jaxconv`` console script."""

import sys

from jaxconv._cli.main import main

if __name__ == "__main__":
    sys.exit(main())
