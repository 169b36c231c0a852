"""``python -m fastmock``."""

import sys

from .cli import main

sys.exit(main())
