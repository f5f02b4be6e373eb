"""The plugin's settings foundation: every suite option declared once, registered on Locust's parser, validated
into one ``SuiteSettings``. It imports nothing of the plugin's features (they import it)."""
