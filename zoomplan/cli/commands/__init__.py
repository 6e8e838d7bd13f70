"""One module per command (``zoomplan plan``, ``budget``, ``audit``, ``export``, ``vendors``, ``train``,
``evaluate``): each parses its options (shared ones from :mod:`zoomplan.cli.options`), calls one library
function and renders the result; importing a module adds its command to :data:`zoomplan.cli.app.app`
(:func:`zoomplan.cli.register` imports them all)."""
