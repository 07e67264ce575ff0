import sys

from vissearch.cli import main

sys.exit(main())
