"""build: wheels of the local code the plan ships (editable, directory, Git and archive installs).

``wheels`` builds or uploads each one into the store, ``git`` checks out a recorded commit,
``repack`` turns faithful installed files back into a wheel, and ``treehash`` names a source
tree by its content so an unchanged tree is never built twice.
"""
