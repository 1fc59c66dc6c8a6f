from packwork.cli import run

run()
