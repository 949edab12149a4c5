"""The application layer between widgets and core: jobs the widgets run, without Qt."""
