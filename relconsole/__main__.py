import sys

from relconsole.cli import main

sys.exit(main())
