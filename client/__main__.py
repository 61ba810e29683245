"""``python -m client`` from the repository root."""

import sys

from client.cli import main

sys.exit(main())
