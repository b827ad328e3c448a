from mgnet_cli.cli import main

main()
