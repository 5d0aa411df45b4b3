from batchthumb.cli import main

main()
