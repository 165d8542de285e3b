// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import "./Authorised.sol";

/// @title ContractTermsRegistry
/// @notice Hashes of each prosumer's DR contract terms and market registration. Ids are pseudonymous
///         (keccak256 of the off-chain id); the terms themselves stay off-chain (GDPR). Every amendment is a new
///         version; earlier versions are never overwritten. Validity bounds are UTC epoch milliseconds.
contract ContractTermsRegistry is Authorised {
    struct Terms {
        bytes32 prosumerId;
        bytes32 termsHash;
        bytes32 registrationHash;
        uint64 validFrom;
        uint64 validTo;
        uint64 blockNumber;
    }

    mapping(bytes32 => mapping(uint32 => Terms)) private _terms;
    mapping(bytes32 => uint32) public latestVersion;

    event TermsRegistered(
        bytes32 indexed contractId,
        bytes32 indexed prosumerId,
        uint32 version,
        bytes32 termsHash,
        bytes32 registrationHash,
        uint64 validFrom,
        uint64 validTo
    );

    error EmptyHash();
    error BadValidity(uint64 validFrom, uint64 validTo);
    error ProsumerMismatch(bytes32 registered, bytes32 given);
    error UnknownVersion(bytes32 contractId, uint32 version);

    /// @notice Register the next version of `contractId`'s terms; returns the new version (1 for the first).
    function register(
        bytes32 contractId,
        bytes32 prosumerId,
        bytes32 termsHash,
        bytes32 registrationHash,
        uint64 validFrom,
        uint64 validTo
    ) external onlyWriter returns (uint32 version) {
        if (termsHash == bytes32(0)) revert EmptyHash();
        if (validTo <= validFrom) revert BadValidity(validFrom, validTo);
        uint32 previous = latestVersion[contractId];
        if (previous != 0 && _terms[contractId][previous].prosumerId != prosumerId) {
            revert ProsumerMismatch(_terms[contractId][previous].prosumerId, prosumerId);
        }
        version = previous + 1;
        _terms[contractId][version] =
            Terms(prosumerId, termsHash, registrationHash, validFrom, validTo, uint64(block.number));
        latestVersion[contractId] = version;
        emit TermsRegistered(contractId, prosumerId, version, termsHash, registrationHash, validFrom, validTo);
    }

    /// @notice Terms of one version (version 0 = latest).
    function getTerms(bytes32 contractId, uint32 version) external view returns (Terms memory) {
        uint32 v = version == 0 ? latestVersion[contractId] : version;
        if (v == 0 || v > latestVersion[contractId]) revert UnknownVersion(contractId, version);
        return _terms[contractId][v];
    }
}
