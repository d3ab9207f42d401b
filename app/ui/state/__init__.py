"""The page's Reflex states: thin adapters over the engine (`app.services`), one module per
tab or panel.

One rule of ordering holds for every action that uses what the user typed. Reflex runs a
page's ordinary events one after another, in the order the page sent them, but starts a
background event at once, ahead of ordinary events still waiting. So a button whose work is a
background event, clicked right after typing, could read the text as it was a few keystrokes
earlier (each keystroke is an ordinary event). Such a button is therefore an ordinary event
that returns the background work: by the time it runs, every keystroke before the click has
landed.
"""
