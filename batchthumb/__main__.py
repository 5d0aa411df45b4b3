from batchthumb.cli import main

# Guarded: render worker processes re-import the main module, as multiprocessing does.
if __name__ == "__main__":
    main()
