"""The pharmacy department: a verification queue fed by the medication stream."""
