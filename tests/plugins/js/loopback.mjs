// Preloaded into the MCP servers the tests start over HTTP (node --import):
// every server the process opens listens on the loopback interface only, and
// says on stderr which port it got, so a test can ask for port 0.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || typeof args[0] === "string") {
    const port = Number(args[0]);
    const rest = args.slice(1).filter((a) => typeof a === "function");
    args = [port, "127.0.0.1", ...rest];
  }
  this.once("listening", () => {
    process.stderr.write(`listening on 127.0.0.1:${this.address().port}\n`);
  });
  return listen.apply(this, args);
};
