import sys

from vtzoo.cli import main

sys.exit(main())
