{
    "name": "DFR Base",
    "summary": "Common ground of the DFR platform's modules",
    "version": "18.0.1.0.0",
    "license": "LGPL-3",
    "depends": ["base"],
    "data": [],
    "installable": True,
}
