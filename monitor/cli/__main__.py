"""`python -m monitor.cli`: what the tests and the container run."""

from monitor.cli import main

main()
