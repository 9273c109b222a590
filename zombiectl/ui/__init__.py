"""What every command draws with: the consoles (`console`), untrusted text as a rich
renderable (`safe`), and the click option types that check numbers (`options`)."""
