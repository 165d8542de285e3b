"""eth-tester chain fixture for the anchoring unit tests."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider


@pytest.fixture
def tester_chain():
    """(w3, funded LocalAccount, second funded LocalAccount) on a fresh in-process eth-tester chain."""
    w3 = Web3(EthereumTesterProvider())
    accounts = []
    for _ in range(2):
        acct = Account.create()
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": acct.address, "value": 10**20})
        accounts.append(acct)
    return w3, accounts[0], accounts[1]
