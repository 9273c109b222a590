"""`python -m zombiectl`."""

from zombiectl.main import main

if __name__ == "__main__":
    main()
