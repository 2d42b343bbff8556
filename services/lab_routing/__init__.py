"""Critical-result routing: abnormal results into the ordering physician's inbox."""
