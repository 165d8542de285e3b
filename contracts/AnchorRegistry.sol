// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import "./Authorised.sol";

/// @title AnchorRegistry
/// @notice One Merkle root per (kind, windowId), write-once. The root commits to every settlement record of the
///         window (see README "Ethereum anchoring" for the leaf encoding). Only hashes and pseudonymous window
///         ids go on-chain. Window bounds are UTC epoch milliseconds.
contract AnchorRegistry is Authorised {
    struct Anchor {
        bytes32 root;
        uint32 count;
        uint64 windowStart;
        uint64 windowEnd;
        uint64 blockNumber;
        address anchorer;
    }

    mapping(bytes32 => Anchor) private _anchors;
    uint256 public anchorCount;

    event Anchored(
        bytes32 indexed key,
        string kind,
        string windowId,
        bytes32 root,
        uint32 count,
        uint64 windowStart,
        uint64 windowEnd,
        address indexed anchorer
    );

    error AlreadyAnchored(bytes32 key, bytes32 root);
    error EmptyRoot();
    error EmptyWindow();
    error BadWindow(uint64 windowStart, uint64 windowEnd);

    /// @notice The storage key of a (kind, windowId) pair: keccak256(abi.encode(kind, windowId)).
    function keyOf(string calldata kind, string calldata windowId) public pure returns (bytes32) {
        return keccak256(abi.encode(kind, windowId));
    }

    /// @notice Record `root` over `count` records for the window [windowStart, windowEnd) (epoch ms).
    ///         Reverts with AlreadyAnchored if the window already has a root, whatever its value.
    function anchor(
        string calldata kind,
        string calldata windowId,
        bytes32 root,
        uint32 count,
        uint64 windowStart,
        uint64 windowEnd
    ) external onlyWriter {
        if (root == bytes32(0)) revert EmptyRoot();
        if (count == 0) revert EmptyWindow();
        if (windowEnd <= windowStart) revert BadWindow(windowStart, windowEnd);
        bytes32 key = keyOf(kind, windowId);
        Anchor storage a = _anchors[key];
        if (a.root != bytes32(0)) revert AlreadyAnchored(key, a.root);
        _anchors[key] = Anchor(root, count, windowStart, windowEnd, uint64(block.number), msg.sender);
        anchorCount += 1;
        emit Anchored(key, kind, windowId, root, count, windowStart, windowEnd, msg.sender);
    }

    /// @notice The anchor of (kind, windowId); root == 0 when the window is not anchored.
    function getAnchor(string calldata kind, string calldata windowId) external view returns (Anchor memory) {
        return _anchors[keyOf(kind, windowId)];
    }

    function isAnchored(string calldata kind, string calldata windowId) external view returns (bool) {
        return _anchors[keyOf(kind, windowId)].root != bytes32(0);
    }

    /// @notice Check a Merkle proof against the anchored root. `leaf` = keccak256(0x00 || canonical record bytes);
    ///         inner nodes are keccak256(0x01 || min(a, b) || max(a, b)).
    function verifyLeaf(
        string calldata kind,
        string calldata windowId,
        bytes32 leaf,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = _anchors[keyOf(kind, windowId)].root;
        if (root == bytes32(0)) return false;
        bytes32 h = leaf;
        for (uint256 i = 0; i < proof.length; i++) {
            bytes32 s = proof[i];
            h = h < s ? keccak256(abi.encodePacked(bytes1(0x01), h, s)) : keccak256(abi.encodePacked(bytes1(0x01), s, h));
        }
        return h == root;
    }
}
