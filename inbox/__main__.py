import sys

from inbox.cli import main

if __name__ == "__main__":  # worker processes (the email parser pool) import this module too
    sys.exit(main())
