"""DUIS XML schema validation: the official DUIS 5.4 schema (with MMC 5.4 and
xmldsig-core, from a folder the user gives: `--xsd DIR`, ../shared/duis/xsd in
tests) and gbmeter's own extension of it for Reset Debt Register
(xsd/gbmeter-duis-5.4-extension.xsd beside this module: its comment says how it
extends DUIS 5.4).

A message whose ServiceReferenceVariant is the extension's (2.3.1) is validated
against the extended schema, every other one against the official schema only, so a
stock DUIS message is held to exactly what the SEC publishes.

The schema files are trusted input (the user's own copy of the official ones): they
are read from the folder only, never from the network; their imports are looked up
by file name in the same folder.

Public API:
    Schemas(xsd_dir)            raises UserError when the folder lacks the schemas
    Schemas.validate(root)      raises xmlsig.XmlError(kind "schema") naming the line
    load(xsd_dir) -> Schemas    cached per folder
    EXTENSION                   the extension file
"""

import copy
import os
import threading
import urllib.parse
from pathlib import Path

from lxml import etree

from gbmeter.dcc.duis import NS, RESET_DEBT_REGISTER
from gbmeter.dcc.xmlsig import XmlError
from gbmeter.errors import UserError

DUIS_FILE = "DUIS Schema V5.4.xsd"
EXTENSION = Path(__file__).parent / "xsd" / "gbmeter-duis-5.4-extension.xsd"
XS = "http://www.w3.org/2001/XMLSchema"
GBM = "urn:gbmeter:duis-extension"
SCHEME = "gbmeter-xsd:"


class _FolderResolver(etree.Resolver):
    """Imports by file name from the schema folder; nothing else is ever read."""

    def __init__(self, folder):
        super().__init__()
        self.folder = Path(folder)

    def resolve(self, url, pubid, context):
        if url and url.startswith(SCHEME):
            name = os.path.basename(urllib.parse.unquote(url[len(SCHEME):]))
            path = self.folder / name
            if path.is_file():
                return self.resolve_filename(str(path), context)
        return self.resolve_empty(context)


def _schema_doc(folder):
    parser = etree.XMLParser(no_network=True, load_dtd=False)
    parser.resolvers.add(_FolderResolver(folder))
    path = Path(folder) / DUIS_FILE
    if not path.is_file():
        raise UserError(f"--xsd: {folder} has no {DUIS_FILE!r} (the official DUIS 5.4 schema "
                        "with MMC Schema V5.4.xsd and xmldsig-core-schema.xsd beside it)")
    try:
        doc = etree.parse(str(path), parser)
    except etree.XMLSyntaxError as e:
        raise UserError(f"{path}: not a schema ({e})") from None
    for imp in doc.getroot().iter(f"{{{XS}}}import", f"{{{XS}}}include"):
        loc = imp.get("schemaLocation")
        if loc:
            imp.set("schemaLocation", SCHEME + urllib.parse.quote(os.path.basename(loc)))
    return doc


def _extend(doc):
    """Add the extension file's types, enumerations and body elements to the DUIS doc."""
    ext = etree.parse(str(EXTENSION), etree.XMLParser(no_network=True, load_dtd=False)).getroot()
    root = doc.getroot()
    q = {"xs": XS, "gbm": GBM}
    for en in ext.iterfind(".//gbm:enumeration", namespaces=q):
        found = root.find(f"xs:simpleType[@name='{en.get('type')}']/xs:restriction", q)
        if found is None:
            raise UserError(f"{EXTENSION}: DUIS has no simple type {en.get('type')}")
        if found.find(f"xs:enumeration[@value='{en.get('value')}']", q) is None:
            etree.SubElement(found, f"{{{XS}}}enumeration", value=en.get("value"))
    body = root.find("xs:complexType[@name='Request']/xs:sequence/xs:element[@name='Body']"
                     "/xs:complexType/xs:choice", q)
    if body is None:
        raise UserError(f"{DUIS_FILE}: no sr:Request/sr:Body choice to extend")
    for be in ext.iterfind(".//gbm:bodyElement", namespaces=q):
        after = body.find(f"xs:element[@name='{be.get('after')}']", q)
        el = etree.Element(f"{{{XS}}}element", name=be.get("name"), type=be.get("type"))
        if after is None:
            body.append(el)
        else:
            after.addnext(el)
    for t in ext:
        if isinstance(t.tag, str) and t.tag in (f"{{{XS}}}complexType", f"{{{XS}}}simpleType"):
            root.append(copy.deepcopy(t))
    return doc


def extension_srvs():
    """The ServiceReferenceVariants the extension adds (2.3.1)."""
    ext = etree.parse(str(EXTENSION)).getroot()
    return {e.get("value") for e in ext.iterfind(f".//{{{GBM}}}enumeration")
            if e.get("type") == "ServiceReferenceVariant"}


class Schemas:
    """The official DUIS 5.4 schema of a folder and gbmeter's extension of it."""

    def __init__(self, xsd_dir):
        self.path = Path(xsd_dir)
        try:
            self.official = etree.XMLSchema(_schema_doc(self.path))
            self.extended = etree.XMLSchema(_extend(_schema_doc(self.path)))
        except etree.XMLSchemaParseError as e:
            raise UserError(f"--xsd {self.path}: the schemas do not load ({e})") from None
        self.extension_srvs = extension_srvs()
        self._lock = threading.Lock()     # an XMLSchema object is not thread-safe

    def uses_extension(self, root):
        srv = root.findtext(f"{{{NS}}}Header/{{{NS}}}ServiceReferenceVariant")
        if srv is None:
            srv = root.findtext(f"{{{NS}}}Body/{{{NS}}}ResponseMessage/{{{NS}}}"
                                "ServiceReferenceVariant")
        return (srv or "").strip() in self.extension_srvs

    def validate(self, root):
        """Raise XmlError(kind "schema") when root is not valid DUIS (see the module)."""
        ext = self.uses_extension(root)
        schema = self.extended if ext else self.official
        with self._lock:
            ok = schema.validate(root)
            err = schema.error_log.last_error
        if not ok:
            which = "DUIS 5.4 + gbmeter's Reset Debt Register extension" if ext else "DUIS 5.4"
            raise XmlError("schema", f"not valid against {which}: line {err.line}: {err.message}")
        return "extended" if ext else "official"


_cache = {}
_cache_lock = threading.Lock()


def load(xsd_dir):
    """Schemas(xsd_dir), made once per folder."""
    key = str(Path(xsd_dir).resolve())
    with _cache_lock:
        if key not in _cache:
            _cache[key] = Schemas(xsd_dir)
        return _cache[key]


def reset_names_agree():
    """Whether the extension file names what duis.RESET_DEBT_REGISTER says."""
    ext = etree.parse(str(EXTENSION)).getroot()
    q = {"xs": XS, "gbm": GBM}
    body = ext.find(".//gbm:bodyElement", q)
    regs = {e.get("value") for e in ext.iterfind(
        "xs:simpleType[@name='ResetDebtRegisterName']/xs:restriction/xs:enumeration", q)}
    child = ext.find(f"xs:complexType[@name='{RESET_DEBT_REGISTER['body']}']/xs:sequence/"
                     "xs:element", q)
    return (body is not None and body.get("name") == RESET_DEBT_REGISTER["body"]
            and extension_srvs() == {RESET_DEBT_REGISTER["service_reference_variant"]}
            and child is not None and child.get("name") == RESET_DEBT_REGISTER["register"]
            and regs == set(RESET_DEBT_REGISTER["registers"]))
