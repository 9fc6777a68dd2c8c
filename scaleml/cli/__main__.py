"""``python -m scaleml.cli``."""

import sys

from scaleml.cli import main

sys.exit(main())
