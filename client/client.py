"""``python client.py --server http://HOST:5000`` from inside the client/ folder."""

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, this folder is first on sys.path and "client" would name this file, not the package.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
    from client.cli import main

    sys.exit(main())
