// An Express 4 app whose routing the attack tests lean on: its routers
// match paths without regard to case by default, so /ADMIN/x reaches the
// /admin router. Run: node tests/apps/express_app.js (NODE_PATH pointing at
// a node_modules with express 4). Prints "listening on http://127.0.0.1:PORT".
const express = require("express");

const app = express();
const seen = (view) => (req, res) =>
  res.json({ view, method: req.method, path: req.path, user: req.get("x-forwarded-user") || null });

const admin = express.Router();
admin.all("*", seen("admin"));
app.use("/admin", admin);
app.all("*", seen("other"));

const server = app.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
