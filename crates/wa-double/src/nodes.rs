//! Small helpers over wacore-binary's `Node`: reading attributes and children, building the
//! server's stanzas, and the byte form on the wire (a flags byte, then the binary node).

use wacore_binary::{Node, NodeContent, builder::NodeBuilder};

/// WhatsApp's own JID, the sender of server stanzas.
pub const SERVER: &str = "s.whatsapp.net";

/// An attribute as a string (JIDs in their text form).
pub fn attr(node: &Node, key: &str) -> Option<String> {
    node.attrs().optional_string(key).map(|s| s.into_owned())
}

pub fn child<'a>(node: &'a Node, tag: &str) -> Option<&'a Node> {
    node.get_optional_child(tag)
}

pub fn children<'a>(node: &'a Node, tag: &'a str) -> impl Iterator<Item = &'a Node> {
    node.get_children_by_tag(tag)
}

/// The node's content as bytes (a string content as its UTF-8 bytes).
pub fn bytes(node: &Node) -> Option<&[u8]> {
    match &node.content {
        Some(NodeContent::Bytes(b)) => Some(b),
        Some(NodeContent::String(s)) => Some(s.as_bytes()),
        _ => None,
    }
}

/// `<tag>` with no attributes or content.
pub fn el(tag: &'static str) -> NodeBuilder {
    NodeBuilder::new(tag)
}

/// `<iq type="result" id=… from="s.whatsapp.net">` answering `iq`, with these children.
pub fn result_to(iq: &Node, children: Vec<Node>) -> Node {
    let mut b = el("iq")
        .attr("type", "result")
        .attr("from", SERVER)
        .attr("id", attr(iq, "id").unwrap_or_default());
    if !children.is_empty() {
        b = b.children(children);
    }
    b.build()
}

/// `<iq type="error">` answering `iq` with `<error code=… text=…/>`.
pub fn error_to(iq: &Node, code: u16, text: &str) -> Node {
    el("iq")
        .attr("type", "error")
        .attr("from", SERVER)
        .attr("id", attr(iq, "id").unwrap_or_default())
        .children([el("error")
            .attr("code", code.to_string())
            .attr("text", text)
            .build()])
        .build()
}

/// The plaintext of a transport frame: flags byte 0 (not compressed), then the node.
pub fn encode(node: &Node) -> Vec<u8> {
    // `marshal` writes the flags byte itself.
    wacore_binary::marshal::marshal(node).unwrap_or_default()
}

/// A transport frame's plaintext as a node (zlib-compressed ones too).
pub fn decode(plain: &[u8]) -> Result<Node, String> {
    let body = wacore_binary::util::unpack(plain).map_err(|e| e.to_string())?;
    let node = wacore_binary::marshal::unmarshal_ref(&body).map_err(|e| e.to_string())?;
    Ok(node.to_owned())
}

/// A short text form for logs: `<iq type=get xmlns=w:p …>`.
pub fn describe(node: &Node) -> String {
    let mut s = format!("<{}", node.tag);
    for (k, v) in node.attrs.iter() {
        s.push_str(&format!(" {k}={v}"));
    }
    if let Some(kids) = node.children() {
        s.push('>');
        for k in kids.iter().take(4) {
            s.push_str(&format!("<{}/>", k.tag));
        }
    } else {
        s.push_str("/>");
    }
    s
}
