# pytorch-hebbian's README listing ("Simple example", README.md at 595ec79 of
# https://github.com/julestalloen/pytorch-hebbian); Copyright (c) 2020 Jules Talloen; MIT License, see LICENSE.
# The listing has no import lines; these are the ones it needs (as in hebbian_simple.py), with
# pytorch_hebbian -> hebbian.compat.pytorch_hebbian. Everything from the first comment after them is the listing verbatim.

from torch.utils.data import DataLoader
from torchvision import datasets, transforms

import models
from hebbian.compat.pytorch_hebbian import config
from hebbian.compat.pytorch_hebbian.learning_rules import KrotovsRule
from hebbian.compat.pytorch_hebbian.optimizers import Local
from hebbian.compat.pytorch_hebbian.trainers import HebbianTrainer

# Creating the model
model = models.create_fc1_model([28 ** 2, 400])

# Creating the dataset and data loaders
dataset = datasets.mnist.MNIST(root=config.DATASETS_DIR, download=True,
                               transform=transforms.ToTensor())
train_loader = DataLoader(dataset, batch_size=1024, shuffle=True)

# Creating the learning rule, optimizer and trainer
learning_rule = KrotovsRule()
optimizer = Local(named_params=model.named_parameters(), lr=0.01)
trainer = HebbianTrainer(model=model, learning_rule=learning_rule,
                         optimizer=optimizer)

# Running the trainer
trainer.run(train_loader=train_loader, epochs=10)
