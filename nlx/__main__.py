from nlx.cli import main

main()
