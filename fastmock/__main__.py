"""``python -m fastmock``."""

import gc
import sys

gc.disable()   # (while the modules load; the server turns it on again once listening)

from .cli import main  # noqa: E402

sys.exit(main())
