"""Department consumers: the pharmacy verification queue and lab result routing."""
