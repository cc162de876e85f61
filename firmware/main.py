# Boot: read this board's settings (board.json, deployed from boards/<name>/), then
# serve the link. Kept tiny so it can stay a .py file when the rest is deployed as .mpy.
import app

app.boot()
