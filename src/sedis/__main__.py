from sedis.cli.app import run

run()
