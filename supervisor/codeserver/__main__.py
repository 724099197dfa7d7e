"""`python -m supervisor.codeserver ...`: run one code server."""

import sys

from supervisor.codeserver.server import main

if __name__ == "__main__":
    sys.exit(main())
