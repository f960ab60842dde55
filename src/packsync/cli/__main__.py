import sys

from packsync.cli import main

sys.exit(main())
