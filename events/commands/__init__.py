"""The write API, one module per clinical area: typed command inputs and their handlers."""
