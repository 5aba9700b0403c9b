"""The command line's grammar (parser.py) and its plugin preloads (preloads.py); service/cli.py
runs what they parse."""
