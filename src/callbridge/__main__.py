import sys

from callbridge.cli.main import main

sys.exit(main())
