// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Authorised
/// @notice Owner plus a rotatable set of authorised writers. The owner adds and removes writers and can hand
///         ownership to another account; only writers may call functions guarded by `onlyWriter`.
abstract contract Authorised {
    address public owner;
    mapping(address => bool) public isWriter;

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event WriterSet(address indexed account, bool authorised);

    error NotOwner(address caller);
    error NotWriter(address caller);
    error ZeroAddress();

    constructor() {
        owner = msg.sender;
        isWriter[msg.sender] = true;
        emit OwnershipTransferred(address(0), msg.sender);
        emit WriterSet(msg.sender, true);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    modifier onlyWriter() {
        if (!isWriter[msg.sender]) revert NotWriter(msg.sender);
        _;
    }

    /// @notice Authorise (`allowed = true`) or revoke a writer. Rotation = add the new key, revoke the old one.
    function setWriter(address account, bool allowed) external onlyOwner {
        if (account == address(0)) revert ZeroAddress();
        isWriter[account] = allowed;
        emit WriterSet(account, allowed);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }
}
