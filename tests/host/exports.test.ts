import {
  exportLine,
  linuxExportLine,
  macosExportLine,
  replaceMarkedBlock,
} from "../../components/host/exports";
import { planFor } from "./fixtures";

describe("export lines", () => {
  it("renders the Linux exportfs syntax", () => {
    expect(linuxExportLine("/var/lib/hardway/dev/nfs", "192.168.234.0/24")).toBe(
      "/var/lib/hardway/dev/nfs 192.168.234.0/24(rw,sync,no_subtree_check,no_root_squash)",
    );
  });

  it("renders the macOS nfsd syntax", () => {
    expect(macosExportLine("/var/lib/hardway/dev/nfs", "192.168.234.0", "255.255.255.0")).toBe(
      "/var/lib/hardway/dev/nfs -network 192.168.234.0 -mask 255.255.255.0 -alldirs -maproot=root",
    );
  });

  it("takes network and mask from the plan", () => {
    const plan = planFor({ subnet: "10.77.3.0/24" });
    expect(exportLine("linux", "/srv/x", plan)).toBe(linuxExportLine("/srv/x", "10.77.3.0/24"));
    expect(exportLine("darwin", "/srv/x", plan)).toBe(
      macosExportLine("/srv/x", "10.77.3.0", "255.255.255.0"),
    );
  });

  it("refuses a directory with white space, which neither syntax can quote", () => {
    expect(() => exportLine("linux", "/srv/my volumes", planFor())).toThrow(/white space/);
  });
});

const user = "/home/me/share 10.0.0.0/8(ro)\n";
const devBlock = "# BEGIN hardway dev\n/a dev-line\n# END hardway dev\n";
const prodBlock = "# BEGIN hardway prod\n/b prod-line\n# END hardway prod\n";

describe("replaceMarkedBlock", () => {
  it.each([
    {
      case: "inserts into an empty file",
      text: "",
      stack: "dev",
      lines: ["/a dev-line"],
      expected: devBlock,
    },
    {
      case: "appends after the user's lines, adding the missing final newline",
      text: user.trimEnd(),
      stack: "dev",
      lines: ["/a dev-line"],
      expected: user + devBlock,
    },
    {
      case: "replaces an existing block in place",
      text: devBlock.replace("dev-line", "old-line") + user,
      stack: "dev",
      lines: ["/a dev-line"],
      expected: devBlock + user,
    },
    {
      case: "removes the block and keeps everything else",
      text: user + devBlock + prodBlock,
      stack: "dev",
      lines: undefined,
      expected: user + prodBlock,
    },
    {
      case: "removing an absent block changes nothing",
      text: user + prodBlock,
      stack: "dev",
      lines: undefined,
      expected: user + prodBlock,
    },
    {
      case: "keeps another stack's block when adding its own",
      text: user + prodBlock,
      stack: "dev",
      lines: ["/a dev-line"],
      expected: user + prodBlock + devBlock,
    },
    {
      case: "does not mistake a stack whose name extends this one's",
      text: "# BEGIN hardway dev2\n/c\n# END hardway dev2\n",
      stack: "dev",
      lines: undefined,
      expected: "# BEGIN hardway dev2\n/c\n# END hardway dev2\n",
    },
    {
      case: "collapses duplicate blocks into one",
      text: devBlock + user + devBlock,
      stack: "dev",
      lines: ["/a dev-line"],
      expected: devBlock + user,
    },
  ])("$case", ({ text, stack, lines, expected }) => {
    expect(replaceMarkedBlock(text, stack, lines)).toBe(expected);
  });

  it("is idempotent", () => {
    const once = replaceMarkedBlock(user + prodBlock, "dev", ["/a dev-line"]);
    expect(replaceMarkedBlock(once, "dev", ["/a dev-line"])).toBe(once);
    const removed = replaceMarkedBlock(once, "dev", undefined);
    expect(replaceMarkedBlock(removed, "dev", undefined)).toBe(removed);
    expect(removed).toBe(user + prodBlock);
  });
});
